"""Small fake servers for the live-API code (kaas verify): each answers like the real API,
as its upstream reference documents it (cited in each module), on 127.0.0.1 only."""

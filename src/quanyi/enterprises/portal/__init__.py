"""The enterprise portal (企业门户, /portal): an enterprise's own users log in and run its account."""

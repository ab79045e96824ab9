"""The full-screen chat app (Textual). It does no model work: it drives the engine through its narrow API."""

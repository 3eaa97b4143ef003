"""JSON shapes of domain objects, shared by the edges that print them (REST API, CLI)."""

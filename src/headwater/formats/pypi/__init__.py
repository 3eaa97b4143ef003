"""PyPI wire formats: distribution file names, simple index pages (PEP 503 HTML, PEP 691 JSON),
and core metadata."""

"""Reading remote indexes and files: the HTTP client policy and one adapter per upstream kind."""

"""Use cases. Each takes its collaborators (session, blob store, settings) as arguments."""

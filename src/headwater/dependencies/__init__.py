"""What kept packages depend on: taking it (closure), checking it is there (solvability), and the
report a run keeps of both. Pure code: records in, findings out (docs/concepts.md,
"Dependencies")."""

"""Who may do what: users, organizations, roles, tokens, single sign-on and the audit log."""

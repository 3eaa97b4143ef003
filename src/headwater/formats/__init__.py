"""Pure parsing and rendering of wire formats; nothing here touches the database or HTTP."""

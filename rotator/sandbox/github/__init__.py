"""A fake GitHub REST API: Actions secrets, sealed boxes, App installation tokens."""

"""`chatd bench`: a load generator operators can point at any chatd, and an instant n8n sink."""

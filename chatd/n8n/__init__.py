"""The n8n side of chatd: the workflow `chatd n8n-workflow` prints."""

"""The Jupyter Server REST and WebSocket API, under /jupyter/, over collab-server's services."""

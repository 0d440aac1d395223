"""The Jupyter Server REST and WebSocket API, under /jupyter/, over our services."""

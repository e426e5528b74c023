"""The deployment files `core deploy` writes: Docker, PM2 and Kubernetes."""

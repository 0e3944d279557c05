"""Filters service: GPU inference microservice for image and video filters."""

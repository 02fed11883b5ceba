"""Synthetic remote-sensing scenes (procedural aerial images, boxes, five captions each)."""

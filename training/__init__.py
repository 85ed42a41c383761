"""Data preparation, procedural shape families, the three-stage trainer and evaluation."""

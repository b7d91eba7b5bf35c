"""Trainer: builds, evaluates, reports and registers the class-weighted fraud model."""

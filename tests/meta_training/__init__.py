"""Tests for the meta_training package."""

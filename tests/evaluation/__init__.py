"""Tests for the evaluation package."""

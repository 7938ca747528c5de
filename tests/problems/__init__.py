"""Tests for the problems package."""

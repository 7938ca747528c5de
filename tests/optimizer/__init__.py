"""Tests for the optimizer package."""

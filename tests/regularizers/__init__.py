"""Tests for the regularizers package."""

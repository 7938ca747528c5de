"""Tests for l2o-scale, mirroring the package layout."""

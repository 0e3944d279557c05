"""Tests of the style filter."""

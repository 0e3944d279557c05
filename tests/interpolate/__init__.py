"""Tests of the interpolate filter."""

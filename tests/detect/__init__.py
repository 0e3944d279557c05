"""Tests of the detect filter."""

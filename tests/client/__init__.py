"""Tests of the Roomz client library against real servers."""

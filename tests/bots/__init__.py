"""Tests of roomz_bots: real servers on loopback, real plugins, a user who talks to the bot."""

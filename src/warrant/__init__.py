"""Warrant: Zero Trust enforcement for autonomous AI agents."""

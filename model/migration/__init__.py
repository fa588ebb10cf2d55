"""The migration protocol as a spec for the checker: variables, actions, properties."""

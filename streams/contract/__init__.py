"""The public contract: topic specs, wire structs, decoding, validation, dead letters, pseudonyms.

Types go down from here; no decision logic comes up. Imports only the foundations.
"""

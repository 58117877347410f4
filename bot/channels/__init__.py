"""Channel adapters: signature, decryption and parsing for each platform."""

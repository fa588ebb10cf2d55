"""The concrete run: the same protocol on packed numpy bitmaps at real guest sizes."""

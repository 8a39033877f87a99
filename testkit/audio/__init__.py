"""Speech made with espeak-ng, and a session's audio in and out, in-process."""

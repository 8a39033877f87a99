"""`python -m agent.tts` is now `python -m voice_service`: say so, then run it."""

import sys

from voice_service.__main__ import main

print("note: `python -m agent.tts` is deprecated; run `python -m voice_service`", file=sys.stderr)
sys.exit(main())

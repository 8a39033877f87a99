"""What the tests and the benchmarks share: the stand-ins, real servers started for a run,
speech, and one way to wait.

- `standins/`: the stand-ins for what no machine here can reach, speaking the real wire
  protocol (Deepgram, an OpenAI-compatible LLM, the voice service, the token server's
  ingest), the MCP test server and LiveKit's Twirp stand-in.
- `audio/`: espeak-ng speech, and feeding and recording a session's audio in-process.
- `livekit_server.py`: the run's real livekit-server and what it holds.
- `e2e/`: a whole stack (livekit-server, token server, worker, stand-ins) for real calls.
- `browser/`: Chromium through Playwright, and the servers its pages talk to.
- `tts/`: reference clips and the tiny Chatterbox models the voice tests load.
- `support_call.py`: the support-bot call the e2e tests and benchmarks script.
- `character_script.py`: the scripted LLM the shipped characters' conversation tests run
  against (`python -m agent test`), and a way to serve it.
- `waiting.py`: `wait_until` and `within`.

`tests/` and `bench/` import from here; nothing here imports from either.
"""

"""The bright kitchen's picture: an existing media server (nginx with its RTMP module) that Shian configures,
starts and reads, the ffmpeg processes around it (relays of pulled cameras, simulated cameras, evidence frames
and clips), the cameras' stream keys, and the viewers it lets in. No picture is decoded or re-encoded here except
a single still frame; docs/video.md says why this server and how a city deploys it."""

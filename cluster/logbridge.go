package cluster

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// newMemberlistLogger returns a *log.Logger, the only kind memberlist
// accepts, that forwards each line to sl at the level named by memberlist's
// "[DEBUG]", "[INFO]", "[WARN]" or "[ERR]" prefix.
func newMemberlistLogger(sl *slog.Logger) *log.Logger {
	return log.New(slogWriter{sl}, "", 0)
}

// slogWriter receives one formatted line per Write (log.Logger guarantees
// that, and serializes the calls).
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	level, msg := parseMemberlistLine(p)
	ctx := context.Background()
	if w.l.Enabled(ctx, level) {
		w.l.Log(ctx, level, msg)
	}
	return len(p), nil
}

// parseMemberlistLine splits "[WARN] memberlist: text\n" into a level and
// "text". Lines without a known prefix are logged at Info.
func parseMemberlistLine(p []byte) (slog.Level, string) {
	line := bytes.TrimSpace(p)
	level := slog.LevelInfo
	if len(line) > 0 && line[0] == '[' {
		if end := bytes.IndexByte(line, ']'); end > 0 {
			known := true
			switch string(line[1:end]) {
			case "DEBUG", "TRACE":
				level = slog.LevelDebug
			case "INFO":
				level = slog.LevelInfo
			case "WARN", "WARNING":
				level = slog.LevelWarn
			case "ERR", "ERROR":
				level = slog.LevelError
			default:
				known = false
			}
			if known {
				line = bytes.TrimSpace(line[end+1:])
			}
		}
	}
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	return level, string(line)
}

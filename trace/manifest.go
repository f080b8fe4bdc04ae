package trace

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// ManifestFile is each table folder's list of its segments, one JSON line
// per segment, appended when the segment is closed (format 1.1 and later).
const ManifestFile = "manifest.jsonl"

// segmentName is what a segment is called: part-, at least six digits,
// .parquet. Anything else in a table folder ("part-000003 (copy).parquet")
// is not read.
var segmentName = regexp.MustCompile(`^part-[0-9]{6,}\.parquet$`)

func isSegmentName(name string) bool { return segmentName.MatchString(name) }

// ManifestEntry describes one segment as its writer closed it: the SHA-256
// of the whole file (data, page headers, page index and footer alike), so a
// reader trusts nothing that was changed after it was written, and the
// time the segment covers, so a segment that is lost later is a gap with
// known ends.
type ManifestEntry struct {
	Segment string `json:"segment"` // file name, part-NNNNNN.parquet
	Rows    int64  `json:"rows"`
	Bytes   int64  `json:"bytes"`
	SHA256  string `json:"sha256"`
	// FirstNs and LastNs are the earliest and latest timestamp_ns of its
	// rows (0 for a table without timestamps).
	FirstNs int64 `json:"first_ns"`
	LastNs  int64 `json:"last_ns"`
}

// manifestCRCKey ends every manifest line: the CRC-32C of the bytes before
// it, so a damaged line is told from a damaged segment (a flipped hash would
// otherwise condemn an intact segment).
const manifestCRCKey = `,"crc32c":"`

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// manifestLine encodes e as one manifest line, newline included.
func manifestLine(e ManifestEntry) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	b = b[:len(b)-1] // the closing brace; the checksum closes the object
	sum := crc32.Checksum(b, castagnoli)
	b = append(b, manifestCRCKey...)
	b = append(b, fmt.Sprintf("%08x\"}\n", sum)...)
	return b, nil
}

// appendManifest adds e to the table folder's manifest and syncs it. The
// writer calls it after the segment's temporary file is synced and before
// the rename, so every segment under its final name has its line: a
// segment without one was not written by this run's writer.
func appendManifest(tableDir string, e ManifestEntry) error {
	line, err := manifestLine(e)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(tableDir, ManifestFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Manifest is a table's manifest as read back.
type Manifest struct {
	Entries map[string]ManifestEntry // by segment file name
	// Damaged describes lines that fail their checksum or do not parse
	// (file:line: why). A last line cut short without its newline is a write
	// the recorder did not finish (it was killed) and is not listed here.
	Damaged []string
	// Torn is true when the last line was cut short. A killed writer
	// leaves that, with no segment renamed after it; a segment the
	// manifest does not list beside a torn line means the manifest itself
	// was cut, and the segment is read unverified.
	Torn bool
}

// readManifest reads a table folder's manifest; it returns nil, nil when
// there is none (a run written before format 1.1).
func readManifest(tableDir string) (*Manifest, error) {
	path := filepath.Join(tableDir, ManifestFile)
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m := &Manifest{Entries: map[string]ManifestEntry{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), len(b)+1)
	complete := len(b) == 0 || b[len(b)-1] == '\n'
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		e, why := parseManifestLine(line)
		if why != "" {
			// A last line with no newline that does not parse is a write
			// the writer did not finish: its segment was never renamed.
			if !complete && n == bytes.Count(b, []byte{'\n'})+1 {
				m.Torn = true
				continue
			}
			m.Damaged = append(m.Damaged, fmt.Sprintf("%s:%d: %s", path, n, why))
			continue
		}
		if _, dup := m.Entries[e.Segment]; dup {
			m.Damaged = append(m.Damaged, fmt.Sprintf("%s:%d: %s listed twice", path, n, e.Segment))
			continue
		}
		m.Entries[e.Segment] = e
	}
	return m, nil
}

// parseManifestLine checks a line's checksum and decodes it; why says what
// is wrong with it.
func parseManifestLine(line []byte) (e ManifestEntry, why string) {
	i := bytes.LastIndex(line, []byte(manifestCRCKey))
	if i < 0 {
		return e, "no crc32c: not a manifest line"
	}
	want, err := strconv.ParseUint(string(bytes.TrimSuffix(line[i+len(manifestCRCKey):], []byte(`"}`))), 16, 32)
	if err != nil || !bytes.HasSuffix(line, []byte(`"}`)) {
		return e, "its crc32c is not 8 hex digits"
	}
	if got := crc32.Checksum(line[:i], castagnoli); got != uint32(want) {
		return e, fmt.Sprintf("crc32c mismatch (line %08x, stored %08x): the line is damaged", got, want)
	}
	if err := json.Unmarshal(line, &e); err != nil {
		return e, fmt.Sprintf("not JSON: %v", err)
	}
	if !isSegmentName(e.Segment) || len(e.SHA256) != 64 {
		return e, "no segment name or SHA-256"
	}
	return e, ""
}

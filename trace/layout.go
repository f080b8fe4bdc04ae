package trace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// Bounds on what a segment may declare, far above anything llem writes
// (a segment holds at most DefaultMaxSegmentRows rows, in pages of about
// 256 KiB): a damaged length beyond them is refused before the decoder
// allocates memory for it.
const (
	maxSegmentRows = 1 << 24
	maxPageBytes   = 16 << 20
)

// checkFooter and checkPages check the structure of a segment that no
// checksum vouches for (format 1.0) before parquet-go decodes any of it.
// parquet-go trusts the lengths it reads: a damaged list length in the
// footer, or page size in a page header, makes it allocate what the damage
// says, and an allocation of tens of GiB kills the process, which no
// recover can catch. So the footer is walked as Thrift, checking every
// length against the bytes that remain; then every page header of every
// column chunk is read, its sizes and counts bounded, and every page's
// CRC-32 checked, dictionary pages included, before any page is
// decompressed.
func checkFooter(b []byte) (err error) {
	defer decodeFailure(&err)
	if len(b) < 12 || string(b[:4]) != "PAR1" || string(b[len(b)-4:]) != "PAR1" {
		return errors.New("no PAR1 magic at both ends: not a whole Parquet file (truncated?)")
	}
	footerLen := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	if footerLen <= 0 || footerLen > len(b)-12 {
		return fmt.Errorf("footer length %d does not fit in %d bytes (truncated?)", footerLen, len(b))
	}
	footer := b[len(b)-8-footerLen : len(b)-8]
	if n, err := skipThrift(footer, thriftStruct, 0); err != nil {
		return fmt.Errorf("footer: %w", err)
	} else if n != len(footer) {
		return fmt.Errorf("footer: %d bytes after its end", len(footer)-n)
	}
	return nil
}

// checkPages checks every column chunk's pages against the footer md
// (which checkFooter has checked can be decoded safely).
func checkPages(b []byte, md *format.FileMetaData) (err error) {
	defer decodeFailure(&err)
	footerLen := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	data := b[:len(b)-8-footerLen]
	if md.NumRows < 0 || md.NumRows > maxSegmentRows {
		return fmt.Errorf("footer: %d rows", md.NumRows)
	}
	var rows int64
	for g, rg := range md.RowGroups {
		if rg.NumRows < 0 || rg.NumRows > md.NumRows-rows {
			return fmt.Errorf("row group %d: %d rows, more than the file's %d", g, rg.NumRows, md.NumRows)
		}
		rows += rg.NumRows
		for c, cc := range rg.Columns {
			if err := checkChunk(data, &cc.MetaData, rg.NumRows); err != nil {
				return fmt.Errorf("row group %d, column %d: %w", g, c, err)
			}
		}
	}
	return nil
}

// checkChunk walks one column chunk's pages.
func checkChunk(data []byte, m *format.ColumnMetaData, rows int64) error {
	switch m.Codec {
	case format.Zstd, format.Brotli, format.Uncompressed: // what llem writes
	default:
		return fmt.Errorf("compression %s: llem writes zstd and brotli", m.Codec)
	}
	if m.NumValues != rows {
		return fmt.Errorf("%d values for %d rows", m.NumValues, rows)
	}
	start := m.DataPageOffset
	if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < start {
		start = m.DictionaryPageOffset
	}
	end := start + m.TotalCompressedSize
	if start < 4 || m.TotalCompressedSize < 0 || end > int64(len(data)) || end < start {
		return fmt.Errorf("pages at bytes %d..%d, outside the file's %d bytes of data", start, end, len(data))
	}
	var values int64
	for pos := start; pos < end; {
		chunk := data[pos:end]
		n, err := skipThrift(chunk, thriftStruct, 0)
		if err != nil {
			return fmt.Errorf("page header at byte %d: %w", pos, err)
		}
		var h format.PageHeader
		if err := thrift.Unmarshal(new(thrift.CompactProtocol), chunk[:n], &h); err != nil {
			return fmt.Errorf("page header at byte %d: %w", pos, err)
		}
		size := int64(h.CompressedPageSize)
		if size < 0 || int64(n)+size > int64(len(chunk)) {
			return fmt.Errorf("page at byte %d: %d bytes, past the end of its column", pos, size)
		}
		if h.UncompressedPageSize < 0 || h.UncompressedPageSize > maxPageBytes {
			return fmt.Errorf("page at byte %d: uncompressed size %d", pos, h.UncompressedPageSize)
		}
		page := chunk[n : int64(n)+size]
		if h.CRC == 0 {
			return fmt.Errorf("page at byte %d: no CRC (llem writes one on every page)", pos)
		}
		if got := crc32.ChecksumIEEE(page); got != uint32(h.CRC) {
			return fmt.Errorf("page at byte %d: CRC-32 mismatch (page %08x, header %08x)", pos, got, uint32(h.CRC))
		}
		var pageValues, nulls, levels int64
		switch h.Type {
		case format.DictionaryPage:
			if !h.DictionaryPageHeader.Valid {
				return fmt.Errorf("page at byte %d: a dictionary page without its header", pos)
			}
			if v := h.DictionaryPageHeader.V.NumValues; v < 0 || int64(v) > rows {
				return fmt.Errorf("page at byte %d: a dictionary of %d values for %d rows", pos, v, rows)
			}
		case format.DataPage:
			if !h.DataPageHeader.Valid {
				return fmt.Errorf("page at byte %d: a data page without its header", pos)
			}
			pageValues = int64(h.DataPageHeader.V.NumValues)
		case format.DataPageV2:
			if !h.DataPageHeaderV2.Valid {
				return fmt.Errorf("page at byte %d: a data page without its header", pos)
			}
			v := h.DataPageHeaderV2.V
			pageValues, nulls = int64(v.NumValues), int64(v.NumNulls)
			levels = int64(v.DefinitionLevelsByteLength) + int64(v.RepetitionLevelsByteLength)
			if v.NumRows != v.NumValues || v.DefinitionLevelsByteLength < 0 || v.RepetitionLevelsByteLength < 0 || levels > size {
				return fmt.Errorf("page at byte %d: %d rows, %d values, levels of %d bytes in %d", pos, v.NumRows, v.NumValues, levels, size)
			}
		default:
			return fmt.Errorf("page at byte %d: page type %s", pos, h.Type)
		}
		if pageValues < 0 || nulls < 0 || nulls > pageValues || values+pageValues > rows {
			return fmt.Errorf("page at byte %d: %d values (%d null), more than the column's %d rows", pos, pageValues, nulls, rows)
		}
		values += pageValues
		pos += int64(n) + size
	}
	if values != rows {
		return fmt.Errorf("its pages hold %d values for %d rows", values, rows)
	}
	return nil
}

// Thrift compact protocol types (thrift's compact protocol specification).
const (
	thriftBoolTrue  = 1
	thriftBoolFalse = 2
	thriftByte      = 3
	thriftI16       = 4
	thriftI32       = 5
	thriftI64       = 6
	thriftDouble    = 7
	thriftBinary    = 8
	thriftList      = 9
	thriftSet       = 10
	thriftMap       = 11
	thriftStruct    = 12
)

// maxThriftDepth bounds nesting; Parquet's metadata nests a few levels.
const maxThriftDepth = 32

var errThriftShort = errors.New("ends before its structure does (damaged Thrift)")

// skipThrift walks one value of type typ at the start of b, without
// building anything, and returns its length. Every length it meets (a
// list's element count, a string's byte count) must fit in what remains,
// so that a decoder that allocates by them allocates at most in
// proportion to b.
func skipThrift(b []byte, typ byte, depth int) (int, error) {
	if depth > maxThriftDepth {
		return 0, errors.New("nested too deep (damaged Thrift)")
	}
	switch typ {
	case thriftBoolTrue, thriftBoolFalse:
		return 0, nil // a struct field's boolean is in its type
	case thriftByte:
		if len(b) < 1 {
			return 0, errThriftShort
		}
		return 1, nil
	case thriftI16, thriftI32, thriftI64:
		_, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, errThriftShort
		}
		return n, nil
	case thriftDouble:
		if len(b) < 8 {
			return 0, errThriftShort
		}
		return 8, nil
	case thriftBinary:
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return 0, errThriftShort
		}
		return n + int(l), nil
	case thriftList, thriftSet:
		if len(b) < 1 {
			return 0, errThriftShort
		}
		size, elem, pos := uint64(b[0]>>4), b[0]&0x0f, 1
		if size == 15 {
			var n int
			size, n = binary.Uvarint(b[1:])
			if n <= 0 {
				return 0, errThriftShort
			}
			pos += n
		}
		if size > uint64(len(b)-pos) { // every element takes a byte at least
			return 0, fmt.Errorf("a list of %d elements in %d bytes (damaged Thrift)", size, len(b)-pos)
		}
		for range size {
			var n int
			var err error
			if elem == thriftBoolTrue || elem == thriftBoolFalse {
				n = 1 // a list's booleans take a byte each
			} else if n, err = skipThrift(b[pos:], elem, depth+1); err != nil {
				return 0, err
			}
			pos += n
			if pos > len(b) {
				return 0, errThriftShort
			}
		}
		return pos, nil
	case thriftMap:
		size, pos := binary.Uvarint(b)
		if pos <= 0 {
			return 0, errThriftShort
		}
		if size == 0 {
			return pos, nil
		}
		if pos >= len(b) || size > uint64(len(b)-pos)/2 {
			return 0, errThriftShort
		}
		kt, vt := b[pos]>>4, b[pos]&0x0f
		pos++
		for range size {
			for _, t := range []byte{kt, vt} {
				n, err := skipThrift(b[pos:], t, depth+1)
				if err != nil {
					return 0, err
				}
				pos += n
			}
		}
		return pos, nil
	case thriftStruct:
		pos := 0
		for {
			if pos >= len(b) {
				return 0, errThriftShort
			}
			h := b[pos]
			pos++
			if h == 0 { // stop
				return pos, nil
			}
			if h>>4 == 0 { // a long-form field id follows
				_, n := binary.Uvarint(b[pos:])
				if n <= 0 {
					return 0, errThriftShort
				}
				pos += n
			}
			n, err := skipThrift(b[pos:], h&0x0f, depth+1)
			if err != nil {
				return 0, err
			}
			pos += n
		}
	}
	return 0, fmt.Errorf("type %d (damaged Thrift)", typ)
}

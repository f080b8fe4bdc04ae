package plots

import (
	"errors"

	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
	"golang.org/x/text/encoding/charmap"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"
)

// pdfCanvas writes text in Windows-1252, the encoding vgpdf declares for
// its embedded fonts: vgpdf passes Go's UTF-8 through, so "°C" came out
// as "Â°C". A character outside Windows-1252 becomes "?".
type pdfCanvas struct{ *vgpdf.Canvas }

func (c pdfCanvas) FillString(f font.Face, pt vg.Point, s string) {
	c.Canvas.FillString(f, pt, pdfText(s))
}

func pdfText(s string) string {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		b, ok := charmap.Windows1252.EncodeRune(r)
		if !ok {
			b = '?'
		}
		out = append(out, b)
	}
	return string(out)
}

// svgCanvas draws text as the glyphs' outlines, as matplotlib does by
// default: an SVG viewer then needs no font (librsvg and Inkscape ignore
// a font embedded with @font-face and substitute a wider one, which made
// labels overlap) and the file is smaller than one with the font in it.
type svgCanvas struct{ *vgsvg.Canvas }

func (c svgCanvas) FillString(f font.Face, pt vg.Point, s string) {
	if f.Font.Size == 0 {
		return
	}
	var p vg.Path
	if err := glyphPath(&p, f, pt, s); err != nil {
		c.Canvas.FillString(f, pt, s) // an unreadable glyph: the text as text
		return
	}
	if len(p) > 0 { // blanks have no outline
		c.Fill(p)
	}
}

// glyphPath adds the outlines of s at pt (on the baseline) to p, laid out
// as font.Face.Width lays it out: unhinted advances and kerning.
func glyphPath(p *vg.Path, f font.Face, pt vg.Point, s string) error {
	var buf sfnt.Buffer
	ppem := fixed.Int26_6(f.Face.UnitsPerEm())
	scale := f.Font.Size / vg.Length(ppem) // points per font unit
	at := func(x vg.Length, q fixed.Point26_6) vg.Point {
		return vg.Point{X: x + vg.Length(q.X)*scale, Y: pt.Y - vg.Length(q.Y)*scale} // sfnt's y grows down
	}
	x := pt.X
	var prev sfnt.GlyphIndex
	for i, r := range []rune(s) {
		idx, err := f.Face.GlyphIndex(&buf, r)
		if err != nil {
			return err
		}
		if i > 0 {
			k, err := f.Face.Kern(&buf, prev, idx, ppem, 0)
			if err != nil && !errors.Is(err, sfnt.ErrNotFound) {
				return err
			}
			if err == nil {
				x += vg.Length(k) * scale
			}
		}
		segs, err := f.Face.LoadGlyph(&buf, idx, ppem, nil)
		if err != nil {
			return err
		}
		open := false
		for _, sg := range segs {
			switch sg.Op {
			case sfnt.SegmentOpMoveTo:
				if open {
					p.Close()
				}
				p.Move(at(x, sg.Args[0]))
				open = true
			case sfnt.SegmentOpLineTo:
				p.Line(at(x, sg.Args[0]))
			case sfnt.SegmentOpQuadTo:
				p.QuadTo(at(x, sg.Args[0]), at(x, sg.Args[1]))
			case sfnt.SegmentOpCubeTo:
				p.CubeTo(at(x, sg.Args[0]), at(x, sg.Args[1]), at(x, sg.Args[2]))
			}
		}
		if open {
			p.Close()
		}
		adv, err := f.Face.GlyphAdvance(&buf, idx, ppem, 0)
		if err != nil {
			return err
		}
		x += vg.Length(adv) * scale
		prev = idx
	}
	return nil
}

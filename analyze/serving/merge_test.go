package serving

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// MergeLogs, as a job merges its nodes' tokens, gives what the stable sort of the nodes' tokens, one node
// after the other, gives: at equal stamps the earlier node first, each
// node's requests after the nodes' before it.
func TestMergeTokensIsAStableSort(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	var logs []*TokenLog
	var all []Token
	bases := []int32{0, 40, 90}
	for node := range bases {
		var tokens []Token
		ts := int64(1_000_000)
		for range 3000 + node*500 {
			ts += r.Int64N(3) * 1000 // many equal stamps, within and across nodes
			tokens = append(tokens, Token{TimestampNs: ts, ClientTimestampNs: ts + int64(node), Req: r.Int32N(40), Count: 1 + r.Int32N(3)})
		}
		logs = append(logs, NewTokenLog(tokens))
		for _, tk := range tokens {
			tk.Req += bases[node]
			all = append(all, tk)
		}
	}
	slices.SortStableFunc(all, func(a, b Token) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) })
	var got []Token
	c := MergeLogs(logs, func(node int, req int32) int32 { return req + bases[node] }).All()
	for tk, ok := c.Next(); ok; tk, ok = c.Next() {
		got = append(got, tk)
	}
	if !slices.Equal(got, all) {
		t.Fatalf("merged tokens differ from the stable sort (%d vs %d tokens)", len(got), len(all))
	}
}

package loadgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
)

// Prompt is one request's input, in the JSON the endpoint takes.
type Prompt struct {
	// Messages is a chat request's messages array; Text a completions
	// request's prompt (a JSON string, or an array of token ids).
	Messages, Text json.RawMessage
	MaxTokens      int   // 0: the Config's
	InputTokens    int64 // the prompt's length when known (token ids), else -1
}

// ReadPrompts reads a JSONL file of prompts for api: one JSON object per
// line, blank lines skipped, with
//
//	"prompt":     a string, or an array of token ids (integers >= 0);
//	              for the chat API a string becomes one user message
//	"messages":   an array of chat messages (objects with a role), as the
//	              chat API takes them; not for the completions API
//	"max_tokens": optional, an integer >= 1: this prompt's output limit
//
// and no other key, so that a misspelt max_tokens is an error rather than
// a silent default. Errors name the file and line.
func ReadPrompts(path string, api API) ([]Prompt, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readPrompts(f, path, api)
}

func readPrompts(r io.Reader, name string, api API) ([]Prompt, error) {
	br := bufio.NewReader(r)
	var out []Prompt
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if len(bytes.TrimSpace(line)) > 0 {
			p, perr := parsePrompt(line, api)
			if perr != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, n, perr)
			}
			out = append(out, p)
		}
		if err == io.EOF {
			break
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no prompts (one JSON object per line, such as {\"prompt\": \"Hello\"})", name)
	}
	return out, nil
}

func parsePrompt(line []byte, api API) (Prompt, error) {
	p := Prompt{InputTokens: -1}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil || obj == nil {
		return p, errors.New(`not a JSON object such as {"prompt": "Hello"} or {"messages": [{"role": "user", "content": "Hello"}]}`)
	}
	for k := range obj {
		if k != "prompt" && k != "messages" && k != "max_tokens" {
			return p, fmt.Errorf("unknown key %q (a line has prompt or messages, and optionally max_tokens)", k)
		}
	}
	if raw, ok := obj["max_tokens"]; ok {
		if err := json.Unmarshal(raw, &p.MaxTokens); err != nil || p.MaxTokens < 1 {
			return p, fmt.Errorf("max_tokens %s: want an integer >= 1", raw)
		}
	}
	prompt, hasPrompt := obj["prompt"]
	messages, hasMessages := obj["messages"]
	switch {
	case hasPrompt == hasMessages:
		return p, errors.New("a line needs exactly one of prompt and messages")
	case hasMessages:
		if api != APIChat {
			return p, errors.New("messages need the chat API; the completions API takes a prompt")
		}
		var msgs []map[string]json.RawMessage
		if err := json.Unmarshal(messages, &msgs); err != nil || len(msgs) == 0 {
			return p, errors.New("messages: want a non-empty array of objects such as {\"role\": \"user\", \"content\": \"Hello\"}")
		}
		for i, m := range msgs {
			var role string
			if json.Unmarshal(m["role"], &role) != nil || role == "" {
				return p, fmt.Errorf("messages[%d]: no role", i)
			}
		}
		p.Messages = messages
		return p, nil
	}
	var text string
	if err := json.Unmarshal(prompt, &text); err == nil {
		if text == "" {
			return p, errors.New("prompt is empty")
		}
		p.Text = prompt
		if api == APIChat {
			p.Messages, p.Text = userMessage(text), nil
		}
		return p, nil
	}
	var ids []int64
	if err := json.Unmarshal(prompt, &ids); err != nil || len(ids) == 0 {
		return p, errors.New("prompt: want a string or a non-empty array of token ids")
	}
	for _, id := range ids {
		if id < 0 {
			return p, fmt.Errorf("prompt: token id %d is negative", id)
		}
	}
	if api == APIChat {
		return p, errors.New("a prompt of token ids needs the completions API; the chat API takes text")
	}
	p.Text, p.InputTokens = prompt, int64(len(ids))
	return p, nil
}

func userMessage(text string) json.RawMessage {
	b, _ := json.Marshal([]map[string]string{{"role": "user", "content": text}}) // strings always encode
	return b
}

// promptWords are common English words that are one token each, with
// their leading space, in the GPT-2, Llama 2 and 3, Mistral and Qwen
// tokenizers, so that n of them make a prompt of about n tokens whatever
// the model. Random words also keep prefix caches from serving the
// prompts of later requests from the first one's.
var promptWords = strings.Fields(`the of and to in is that for it as was with be by on not
	he this are or his from at which but have an had they you were their one all we can
	her has there been if more when will would who so no she other its may these about
	into than some time only new what out could also`)

// generatedPrompt is request k's generated prompt of n words: the same
// for the same seed and k, different for different k.
func generatedPrompt(seed uint64, k int64, n int, api API) Prompt {
	rng := rand.New(rand.NewPCG(seed, uint64(k)))
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(promptWords[rng.IntN(len(promptWords))])
	}
	if api == APIChat {
		return Prompt{Messages: userMessage(b.String()), InputTokens: -1}
	}
	text, _ := json.Marshal(b.String())
	return Prompt{Text: text, InputTokens: -1}
}

// promptOrder hands out the prompts of a file in a seeded order: each
// pass over the file is a new permutation, so every prompt is used once
// before any is used twice, and request k gets the same prompt for the
// same seed whatever the timing. Not safe for concurrent use.
type promptOrder struct {
	prompts []Prompt
	seed    uint64
	pass    int64
	perm    []int
}

func (o *promptOrder) at(k int64) Prompt {
	n := int64(len(o.prompts))
	if pass := k / n; o.perm == nil || pass != o.pass {
		// A stream of its own per pass, apart from generated prompts' (k).
		o.pass, o.perm = pass, rand.New(rand.NewPCG(o.seed, 1<<63|uint64(pass))).Perm(int(n))
	}
	return o.prompts[o.perm[k%n]]
}

-- wrk: POST a small Chat Completions request (Switchyard's OpenAI-compatible front), the same
-- conversation as bench/post.lua, routed to the same Messages upstream and translated both ways.
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer sk-bench-not-a-real-key"
wrk.body = '{"model":"claude-sonnet-4-20250514","max_tokens":64,"messages":[{"role":"user","content":"hello"}]}'

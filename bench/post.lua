-- wrk: POST a small Messages request.
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.headers["x-api-key"] = "sk-ant-bench-not-a-real-key"
-- LiteLLM's proxy authenticates callers with its master key; the others ignore this header.
wrk.headers["authorization"] = "Bearer sk-ant-bench-not-a-real-key"
wrk.body = '{"model":"claude-sonnet-4-20250514","max_tokens":64,"messages":[{"role":"user","content":"Say hello."}]}'

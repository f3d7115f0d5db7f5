// The contract between the API judge (lab/eval/judge-api.ts, pure) and its transport (hub/json-post.ts,
// fetch with retries): one JSON POST and the transport's last word. Here because lab/ and hub/ may not
// import each other; both import this. Types only: it must never import anything of the project, Node
// APIs or the DOM.

/** One JSON POST as the judge asks for it. */
export interface JsonPostRequest {
  url: string;
  /** content type and, when there is a key, `authorization` */
  headers: Record<string, string>;
  body: string;
  signal?: AbortSignal;
}

/**
 * The transport's last word after its own retries (of 429, 5xx, network failures and timeouts): the
 * endpoint's answer, or why it could not be reached; `attempts` counts the requests made.
 */
export type JsonPostAnswer =
  | {
      kind: 'http';
      status: number;
      statusText: string;
      contentType: string | null;
      text: string;
      attempts: number;
    }
  | { kind: 'unreachable'; why: string; attempts: number };

/** Sends one POST (retrying as it sees fit); rejects with an AbortError when `signal` aborts. */
export type JsonPost = (req: JsonPostRequest) => Promise<JsonPostAnswer>;

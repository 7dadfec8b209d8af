// Uploads with XMLHttpRequest, the one browser API that reports upload progress (fetch does not).
import { ApiError, isErrorBody } from "./errors";
import { newCorrelationId } from "./client";

/**
 * PUTs `body` as raw bytes to `url`. Calls `onProgress` as bytes leave, resolves with the parsed
 * JSON answer of a 2xx, rejects with an ApiError otherwise, or with the abort reason when
 * `signal` aborts.
 */
export function putWithProgress(
  url: string,
  body: Blob,
  onProgress: (sent: number, total: number) => void,
  signal: AbortSignal,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const correlationId = newCorrelationId();
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("X-Correlation-ID", correlationId);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : body.size);
    const onAbort = () => xhr.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    const done = () => signal.removeEventListener("abort", onAbort);
    xhr.onabort = () => {
      done();
      reject(signal.reason);
    };
    xhr.onerror = () => {
      done();
      reject(ApiError.client("NETWORK_ERROR", "The upload did not reach the server.", correlationId));
    };
    xhr.onload = () => {
      done();
      const responseId = xhr.getResponseHeader("X-Correlation-ID") ?? correlationId;
      let parsed: unknown = undefined;
      try {
        parsed = xhr.responseText ? (JSON.parse(xhr.responseText) as unknown) : undefined;
      } catch {
        parsed = undefined;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(parsed);
      else if (isErrorBody(parsed)) reject(ApiError.fromBody(xhr.status, parsed));
      else
        reject(
          ApiError.client("BAD_RESPONSE", `The server answered HTTP ${xhr.status} without an error body.`, responseId, xhr.status),
        );
    };
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    xhr.send(body);
  });
}

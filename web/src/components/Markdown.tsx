// Model answers as Markdown, safely: react-markdown builds React elements from the Markdown
// syntax tree and never injects HTML. HTML written in the answer (`<b>`, `<img onerror=…>`) is
// shown as the text it is (there is no rehype-raw), URLs go through react-markdown's default
// filter (no `javascript:`), and links open in a new tab without handing over `window.opener`.
import type { ReactNode } from "react";
import ReactMarkdown, { type Components } from "react-markdown";
import remarkGfm from "remark-gfm";
import { CopyButton } from "./CopyButton";

/** The text of a hast node and its descendants (what a code block's copy button copies). */
interface HastNode {
  type: string;
  value?: string;
  children?: HastNode[];
}
function textOf(node: HastNode | undefined): string {
  if (!node) return "";
  if (node.type === "text") return node.value ?? "";
  return (node.children ?? []).map(textOf).join("");
}

const components: Components = {
  a: ({ children, href, title }) => (
    <a href={href} title={title} target="_blank" rel="noopener noreferrer">
      {children}
    </a>
  ),
  pre: ({ node, children }): ReactNode => (
    <div className="md-code">
      <CopyButton text={() => textOf(node as HastNode | undefined)} label="Copy code" track="chat-copy-code" />
      <pre>{children}</pre>
    </div>
  ),
  table: ({ children }) => (
    <div className="md-table">
      <table>{children}</table>
    </div>
  ),
  // Images would be fetched from wherever the model points; show the link instead.
  img: ({ src, alt }) => (
    <a href={typeof src === "string" ? src : undefined} target="_blank" rel="noopener noreferrer">
      {alt || "image"}
    </a>
  ),
};

export function Markdown({ text }: { text: string }) {
  return (
    <div className="markdown">
      <ReactMarkdown remarkPlugins={[remarkGfm]} components={components}>
        {text}
      </ReactMarkdown>
    </div>
  );
}

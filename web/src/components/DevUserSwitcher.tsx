// Only under `dbapp dev`: pick the demo user (alice, bob, admin) whose token the dev identity
// layer forwards. `GET /_dev/user` answers {"user": "alice", "users": ["alice", "bob", "admin"]}
// and `POST /_dev/user {"user": "bob"}` sets the dev cookie. These routes exist only under
// `dbapp dev` and are deliberately not in the OpenAPI document, so their small shape is checked
// here at run time; under `dbapp serve` the path is answered by index.html (not JSON) and the
// switcher stays hidden.
import { useQuery } from "@tanstack/react-query";
import { useId } from "react";

const DEV_USER_URL = "/_dev/user";

interface DevUser {
  name: string;
  label: string;
}
interface DevUsers {
  current: string | null;
  users: DevUser[];
}

function parseDevUsers(v: unknown): DevUsers | null {
  if (typeof v !== "object" || v === null) return null;
  const o = v as Record<string, unknown>;
  if (!Array.isArray(o["users"])) return null;
  const users: DevUser[] = [];
  for (const u of o["users"] as unknown[]) {
    if (typeof u === "string") users.push({ name: u, label: u });
    else if (typeof u === "object" && u !== null) {
      const r = u as Record<string, unknown>;
      const name = r["name"];
      if (typeof name !== "string") continue;
      const email = r["user_id"] ?? r["email"];
      users.push({ name, label: typeof email === "string" ? `${name} (${email})` : name });
    }
  }
  const chosen = o["user"] ?? o["current"];
  const current = typeof chosen === "string" ? chosen : null;
  return users.length > 0 ? { current, users } : null;
}

async function fetchDevUsers(): Promise<DevUsers | null> {
  try {
    const res = await fetch(DEV_USER_URL, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!res.ok || !(res.headers.get("Content-Type") ?? "").includes("application/json")) return null;
    return parseDevUsers(await res.json());
  } catch {
    return null;
  }
}

/** Asks the dev identity layer to act as `name` from now on (it sets its cookie). */
async function chooseDevUser(name: string): Promise<boolean> {
  try {
    const res = await fetch(DEV_USER_URL, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ user: name }),
      credentials: "same-origin",
    });
    return res.ok;
  } catch {
    return false;
  }
}

export function DevUserSwitcher() {
  const id = useId();
  const dev = useQuery({ queryKey: ["dev-users"], queryFn: fetchDevUsers, staleTime: Infinity, retry: false });
  if (!dev.data) return null;
  const { current, users } = dev.data;
  return (
    <div className="dev-switcher" data-testid="dev-user-switcher">
      <label htmlFor={id}>Dev user</label>
      <select
        id={id}
        value={current ?? ""}
        onChange={(e) => {
          // Then a full reload, so that every cached query starts afresh as the new user.
          void chooseDevUser(e.target.value).then(() => window.location.reload());
        }}
        data-track="dev-switch-user"
      >
        {current === null && <option value="">choose…</option>}
        {users.map((u) => (
          <option key={u.name} value={u.name}>
            {u.label}
          </option>
        ))}
      </select>
    </div>
  );
}

/** The commands' help lines, apart from their code: `accept` loads a command's modules only when it runs it. */

export const REPORT_HELP = `  report [--check]         build the Allure HTML report from reports/allure-results into
                           reports/allure-report, with history and trend across runs (npm run report);
                           --check renders it in headless chromium, looks for every DoD item of
                           the run record and saves screenshots in reports/ (docs/reports.md)
`;

export const DOCTOR_HELP = `  doctor                   preflight: configuration, lab, proxy, Incus API and image, SSH, nix/git/age,
                           disk; one line per check with its fix; exits non-zero at the first
                           blocking problem
`;

export const TOOLS_HELP = `  sops decrypt --identity KEYFILE FILE
                           decrypt a sops YAML/JSON file with age identities, verify its MAC,
                           print the document as JSON (it holds secrets: mind where it goes)
  sops encrypt --age RECIPIENT[,RECIPIENT…] FILE
                           encrypt a plain YAML/JSON file to age recipients; sops YAML on stdout
  tls show HOST:PORT --servername NAME --ca PEMFILE [--socks socks5://…]
                           the chain served there: subject, issuer, SANs, validity, SHA-256;
                           verified against PEMFILE (a chain that does not verify is an error)
`;

export const WATCH_HELP = `  watch [SPEC…]            the builder's loop: a long-lived warm session against the kept host
                           (default: the read-only specs C1-C7, D8, D9); re-runs on Enter (a line on
                           a piped stdin), on a change to a spec or what it imports, and when
                           kept.json changes; each re-run attaches afresh (kept.json, the lab, the
                           files the settings name) and ERRORs naming what no longer holds; the
                           ACCEPT_* settings are the session's environment: to change one, quit (q)
                           and start it again. One worker process serves every run (the harness's
                           modules evaluated afresh each time); --new-worker-each-run starts one per run
`;

export const ATTEST_HELP = `  attest [EVIDENCE_DIR] --key KEY
                           sign a run's evidence (default: the latest run's, as report picks it):
                           attestation.json, an in-toto Statement v1 with a digest of every file
                           and the run's facts and verdicts, and attestation.json.sig from
                           ssh-keygen -Y sign (namespace cc-ci-acceptance-attestation@v1); refuses
                           if a registered secret would reach the statement
  verify [EVIDENCE_DIR] --allowed-signers FILE [--max-age 24h] [--items C1-C7|C1,C3]
         [--target lab|incus|ssh] [--gate]
                           check a signed run, offline: the signature against FILE, every file's
                           digest (changed, removed, added), run.json against the statement, a
                           cold run, the target, the age (attested and finished within --max-age),
                           every asked item PASS (default: all). Exits 0 only if all hold, printing
                           a REVIEW.md entry; 1 naming each failing check; 2 when nothing could be
                           checked. --gate: whether \`## DONE\` may be written (C1-C7 PASS, cold,
                           not the lab, within --max-age) (docs/reports.md)
`;

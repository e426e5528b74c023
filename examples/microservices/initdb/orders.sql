-- Each service owns its database: `users` (POSTGRES_DB) for the user API, this one for the order API.
CREATE DATABASE orders;
